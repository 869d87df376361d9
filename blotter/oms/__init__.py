"""The OMS application core: commands in, durable events out (asyncio)."""
