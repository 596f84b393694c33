"""Change webhooks to the app: payloads, signatures, delivery with retries and a delivery log."""
