"""Live event sources (LISTEN/NOTIFY, MQTT, polling) feeding one coalescing bus."""
