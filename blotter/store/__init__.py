"""The SQLAlchemy event store and its read-side projections (adapter for ``oms.ports``)."""
