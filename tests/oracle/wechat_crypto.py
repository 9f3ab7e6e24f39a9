"""The safe-mode oracle: wechatpy's WeChatCrypto checks wxnotify's
encryption and produces messages for wxnotify to decrypt.

Usage: wechat_crypto.py CASES OUT
  CASES: a JSON list of {token, aes_key, appid, nonce, timestamp, xml,
         encrypt, msg_signature} where `encrypt`/`msg_signature` came from
         wxnotify.
  OUT:   writes, for each case, wechatpy's decryption of wxnotify's message
         and wechatpy's own encryption of the same xml:
         {decrypted, encrypt, msg_signature}.
"""

import json
import sys
from xml.etree import ElementTree

from wechatpy.crypto import WeChatCrypto


def main():
    _, cases_path, out_path = sys.argv
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    out = []
    for case in cases:
        crypto = WeChatCrypto(case["token"], case["aes_key"], case["appid"])
        envelope = "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt></xml>" % case["encrypt"]
        decrypted = crypto.decrypt_message(envelope, case["msg_signature"], case["timestamp"], case["nonce"])
        own = ElementTree.fromstring(crypto.encrypt_message(case["xml"], case["nonce"], case["timestamp"]))
        out.append({
            "decrypted": decrypted if isinstance(decrypted, str) else decrypted.decode("utf-8"),
            "encrypt": own.findtext("Encrypt"),
            "msg_signature": own.findtext("MsgSignature"),
        })
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
