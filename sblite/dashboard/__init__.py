"""The dashboard: its static page and assets (served by sblite.http.dashboard_routes) and its sign-in sessions."""
