"""Status, logs and load: what the admin reads about projects and the box."""
