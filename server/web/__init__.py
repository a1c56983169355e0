"""The browser app: its cookie sessions and the built assets it is served from.

The TypeScript sources live in ``server/web/app/``; ``make web`` (run by ``make
install``) builds them into ``server/web/dist/``, which ``assets.py`` serves at ``/``.
"""
