"""The service layer, the one way in for both faces: `facade.Service` (operations,
`configure` and `queries`), the executor, the poller, the outbox, the control socket,
`boot` (the CLI's entry points) and `serve` (the only composition root).
"""
