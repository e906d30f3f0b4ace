"""One module per tab of the web app; each has `build(ctx, ...) -> components`, assembled in ui/app.py."""
