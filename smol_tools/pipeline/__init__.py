"""Packaging steps: fetch, convert, quantize, embed, verify, modelfile, card, publish."""
