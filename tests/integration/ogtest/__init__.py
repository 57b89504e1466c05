"""Test fixtures for mod_ocsp_guard integration tests: PKI, OCSP responder front, httpd, TLS clients."""
