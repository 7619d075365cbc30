"""HTTP entry point (FastAPI). Import `appliance.web.app.create_app`; this package stays light to import."""
