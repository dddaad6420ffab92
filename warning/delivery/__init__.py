"""Delivery bookkeeping shared by channel workers and the API: receipts, fallback, door knocks."""
