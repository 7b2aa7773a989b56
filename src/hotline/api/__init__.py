"""The operator HTTP API (OpenAPI) and the peer endpoint: two apps on two ports."""
