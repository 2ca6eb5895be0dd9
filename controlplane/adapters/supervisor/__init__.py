"""supervisord: its XML-RPC client, the program files rendered for it, the event listener
it runs, and the Runner the engine uses on top of them (runner.py, with links.py).
"""
