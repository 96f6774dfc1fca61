"""The server entry point (``gunicorn wsgi:app``, ``flask --app wsgi run``): the app, with the
services a server process runs (``Hub.serve``). Commands load ``--app hub`` instead."""

from hub import create_app

app = create_app()
app.extensions["hub"].serve()
