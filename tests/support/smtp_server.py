"""A real SMTP server for the tests: aiosmtpd, storing received mail in a
maildir, optionally with STARTTLS or implicit TLS and AUTH.

    python3 smtp_server.py MAILDIR [--starttls CERT KEY | --tls CERT KEY] [--auth USER:PASS] [--reject] [--closed]

It binds 127.0.0.1 on a port the system picks and prints `port N`, then
`ready N` once it accepts connections. A bind failure ends it with an error,
never with a server on some other port.

--reject answers every recipient with a permanent 550.
--closed keeps the port bound but refuses connections (a relay that is
down) until a line `open` arrives on stdin.
--slow SECONDS stores each message, prints `received`, and answers the
DATA command only SECONDS later (a delivery still under way).
"""
import argparse
import asyncio
import socket
import ssl
import sys

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Rejecting(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address


class Slow(Mailbox):
    def __init__(self, maildir, seconds):
        super().__init__(maildir)
        self.seconds = seconds

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        print("received", flush=True)
        await asyncio.sleep(self.seconds)
        return reply


def main():
    p = argparse.ArgumentParser()
    p.add_argument("maildir")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth", metavar="USER:PASS")
    p.add_argument("--reject", action="store_true")
    p.add_argument("--closed", action="store_true")
    p.add_argument("--slow", type=float)
    a = p.parse_args()

    kwargs = {"hostname": "127.0.0.1"}
    wrapper = None
    if a.starttls or a.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*(a.starttls or a.tls))
        if a.starttls:
            kwargs.update(tls_context=ctx, require_starttls=True)
        else:
            wrapper = ctx
    if a.auth:
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
            return AuthResult(success=ok)

        # Implicit TLS is encrypted from the start; aiosmtpd only needs to be
        # told that plaintext AUTH is fine there.
        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=not a.tls)
    if a.reject:
        handler = Rejecting(a.maildir)
    elif a.slow:
        handler = Slow(a.maildir, a.slow)
    else:
        handler = Mailbox(a.maildir)

    # Bound but not listening: connections are refused, the port is ours.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    print("port", port, flush=True)
    if a.closed:
        for line in sys.stdin:
            if line.strip() == "open":
                break
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, **kwargs), sock=sock, ssl=wrapper)
    )
    print("ready", port, flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
