"""The object a WSGI server serves: ``gunicorn wsgi:app``."""

from esn import create_app

app = create_app()
