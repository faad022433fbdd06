"""Servers Sentimon starts on this machine: the tansu broker, a local S3 API for a durable broker, the real
tritonserver, and a verifying webhook receiver that plays a trading desk."""
