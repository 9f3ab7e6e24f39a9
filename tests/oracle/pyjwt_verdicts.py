"""Oracle for the auth differential test: PyJWT's verdict on each token.

Reads {"secret", "issuer", "audience", "leeway", "tokens": [...]} on stdin
and prints a JSON list with, per token, true when PyJWT accepts it as an
HS256 token with that secret, issuer, audience and leeway (exp required).
"""

import json
import sys

import jwt


def verdict(token, spec):
    try:
        jwt.decode(
            token,
            spec["secret"],
            algorithms=["HS256"],
            issuer=spec["issuer"],
            audience=spec["audience"],
            leeway=spec["leeway"],
            options={"require": ["exp"]},
        )
        return True
    except jwt.PyJWTError:
        return False


def main():
    spec = json.load(sys.stdin)
    json.dump([verdict(token, spec) for token in spec["tokens"]], sys.stdout)


if __name__ == "__main__":
    main()
