"""A real SMTP server for the tests: aiosmtpd, storing received mail in a
maildir, optionally with STARTTLS or implicit TLS and AUTH.

    python3 smtp_server.py PORT MAILDIR [--starttls CERT KEY | --tls CERT KEY] [--auth USER:PASS] [--reject]

--reject answers every recipient with a permanent 550.
"""
import argparse
import asyncio
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword


class Rejecting(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("maildir")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth", metavar="USER:PASS")
    p.add_argument("--reject", action="store_true")
    a = p.parse_args()

    kwargs = {}
    if a.starttls or a.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*(a.starttls or a.tls))
        if a.starttls:
            kwargs.update(tls_context=ctx, require_starttls=True)
        else:
            kwargs.update(ssl_context=ctx)
    if a.auth:
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
            return AuthResult(success=ok)

        # Implicit TLS is encrypted from the start; aiosmtpd only needs to be
        # told that plaintext AUTH is fine there.
        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=not a.tls)
    handler = Rejecting(a.maildir) if a.reject else Mailbox(a.maildir)
    controller = Controller(handler, hostname="127.0.0.1", port=a.port, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
