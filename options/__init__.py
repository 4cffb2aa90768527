"""Command-line options: base_options (shared), train_options, test_options."""
