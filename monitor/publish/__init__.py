"""Publishing alerts to MQTT without losing any: a persistent outbox in front of the broker."""
