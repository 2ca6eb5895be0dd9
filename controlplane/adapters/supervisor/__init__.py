"""supervisord: its XML-RPC client, the program files rendered for it, and the event
listener it runs.
"""
