"""One router per resource, all mounted by ``api.app.create_app``."""
