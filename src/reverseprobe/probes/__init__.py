"""One module per probe. Each returns a frozen result with a status and never prints."""
