"""The one facade both faces call, the executor, the poller, the outbox, the control
socket, and serve (the only composition root).
"""
