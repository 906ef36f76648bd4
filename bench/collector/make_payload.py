#!/usr/bin/env python3
"""Writes one Segment /v1/batch body: 20 realistic events of about 650 bytes each.

make_payload.py [SEED]   (default 7); different seeds give different users and ids.
"""
import json
import random
import sys

random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
NAMES = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed", "Products Searched"]
UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0.0.0 Safari/537.36")


def event(i):
    name = NAMES[i % len(NAMES)]
    sku = f"SKU-{random.randint(10000, 99999)}"
    return {
        "type": "track",
        "event": name,
        "userId": f"user-{random.randint(1, 50000)}",
        "anonymousId": f"{random.getrandbits(64):016x}-{random.getrandbits(32):08x}",
        "messageId": f"ajs-next-{random.getrandbits(128):032x}",
        "timestamp": f"2024-05-01T12:{i:02d}:{random.randint(10, 59)}.{random.randint(100, 999)}Z",
        "properties": {"product_id": sku, "name": "Trail Runner 2",
                       "price": round(random.uniform(20, 200), 2), "quantity": 1, "currency": "EUR"},
        "context": {
            "page": {"path": "/p/trail-runner-2", "referrer": "https://www.google.com/",
                     "title": "Trail Runner 2 | Shop", "url": "https://shop.example.com/p/trail-runner-2?utm_source=google"},
            "userAgent": UA,
            "locale": "de-DE"
        },
    }


batch = {"batch": [event(i) for i in range(20)],
         "context": {"library": {"name": "analytics.js", "version": "next-1.70.0"}},
         "sentAt": "2024-05-01T12:30:00.000Z"}
body = json.dumps(batch, separators=(",", ":"))
sizes = [len(json.dumps(e, separators=(",", ":"))) for e in batch["batch"]]
sys.stdout.write(body)
sys.stderr.write(f"payload: {len(body)} bytes, {len(sizes)} events, {sum(sizes) // len(sizes)} bytes/event on average\n")
