"""Services: the application's behaviour, independent of HTTP."""
