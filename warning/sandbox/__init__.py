"""Local provider sandbox: Twilio REST, FCM v1 (+ its OAuth2 token endpoint), a Web Push
service and grid-webhook receivers on one port, so the real client libraries have
something real to talk to when no provider credentials are set."""
