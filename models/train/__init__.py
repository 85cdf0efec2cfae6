"""Training of the student encoder (data preparation, training, export). Uses torch; the app never imports this package."""
