"""Model catalog, content-addressed artifact store and the only code that touches the network."""
