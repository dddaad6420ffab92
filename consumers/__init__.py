"""Delivery side: one worker loop, one Notifier per channel."""
