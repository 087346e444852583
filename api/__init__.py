"""CivicPulse HTTP API: thin FastAPI routes over ``analyzer`` (see ``api.app.create_app``)."""
