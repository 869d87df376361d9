"""The pure domain: values, events, state machines, aggregates and positions.

Nothing here does I/O, touches asyncio or imports Qt; everything is a function of its inputs.
"""
