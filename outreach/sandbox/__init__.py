"""A local stand-in for the SendGrid and Twilio APIs (`outreach sandbox`, and `Sandbox` in tests).

It imports nothing of the engine: it speaks the providers' formats only, so that what the engine
does against it is what it would do against the real services.

    state.py     what it remembers: accepted messages, faults, opt-outs, the signing key
    sendgrid.py  Mail Send validation, Event Webhook payloads and their ECDSA signature
    twilio.py    Messages resources, error codes, magic numbers, status callbacks
    inbound.py   Inbound Parse posts: replies and calendar RSVPs as mail clients send them
    emit.py      posting the providers' signed webhooks back to the engine
    buyer.py     a scripted buyer that answers messages by itself
    server.py    the HTTP app, `Sandbox` for tests and `serve` for the command
"""
