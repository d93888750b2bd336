"""Seeds the fuzzed tenant with one object of each kind through the API and prints a
schemathesis.toml that gives their ids to the operations whose paths take them, so that those
operations reach the service's logic instead of answering 404 (scripts/fuzz.sh).

Usage: fuzz_seed.py BASE_URL API_KEY TOKEN > schemathesis.toml
"""

import json
import sys
import time
import urllib.error
import urllib.request

BASE, API_KEY, TOKEN = sys.argv[1:4]


def call(method, path, body=None):
    request = urllib.request.Request(
        BASE + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "AppId": API_KEY,
            "Authorization": "Bearer " + TOKEN,
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as err:
        sys.exit(f"seeding {method} {path}: {err.code} {err.read().decode()}")


def created(path, body):
    return call("POST", path, body)["data"]


webhook = created("/stripe/webhooks", {"webhook": {"events": ["*"]}})
customer = created("/stripe/customers", {"customer": {"email": "fuzz@example.com"}})
cus = customer["attributes"]["stripe_customer_id"]
product = created("/stripe/products", {"product": {"name": "Fuzz"}})
price = created(
    "/stripe/prices",
    {"price": {"product_id": product["id"], "unit_amount": 1000, "currency": "usd",
               "interval": "month"}},
)
stripe_price = price["attributes"]["stripe_price_id"]
one_time = created(
    "/stripe/prices",
    {"price": {"product_id": product["id"], "unit_amount": 500, "currency": "usd"}},
)
paid = created(
    "/stripe/payments",
    {"payment": {"amount": 1500, "currency": "usd", "customer_id": cus,
                 "payment_method": "pm_card_visa"}},
)
unconfirmed = created(
    "/stripe/payments", {"payment": {"amount": 900, "currency": "usd", "customer_id": cus}}
)
session = created(
    "/stripe/sessions",
    {"session": {"customer_id": cus, "success_url": "https://app.example.com/ok",
                 "cancel_url": "https://app.example.com/no",
                 "line_items": [{"price_id": one_time["attributes"]["stripe_price_id"],
                                 "quantity": 1}]}},
)
card = created("/stripe/cards", {"card": {"payment_method_id": "pm_card_visa", "customer_id": cus}})
subscription = created(
    "/stripe/subscriptions", {"subscription": {"customer_id": cus, "price_id": stripe_price}}
)
link = created("/stripe/payment_links", {"payment_link": {"price_id": stripe_price}})
call("PUT", "/stripe/orders/fuzz-order-1", {"order": {"amount": 700, "currency": "usd"}})
job = created("/stripe/sync/historical", {})
charge = None
for _ in range(100):
    charges = call("GET", "/stripe/charges?payment_id=" + paid["id"])["data"]
    if charges:
        charge = charges[0]["id"]
        break
    time.sleep(0.1)
if charge is None:
    sys.exit("seeding: the payment's charge never arrived")

ids = {
    "/stripe/customers/{unique_id}": {"unique_id": customer["id"]},
    "/stripe/customers/{unique_id}/portal": {"unique_id": customer["id"]},
    "/stripe/sessions/{session_id}": {"session_id": session["id"]},
    "/stripe/payments/{unique_id}/confirm": {"unique_id": unconfirmed["id"]},
    "/stripe/charges/{charge_id}": {"charge_id": charge},
    "/stripe/orders/{order_unique_id}": {"order_unique_id": "fuzz-order-1"},
    "/stripe/subscriptions/{stripe_subscription_id}": {
        "stripe_subscription_id": subscription["id"]
    },
    "/stripe/cards/{card_id}": {"card_id": card["id"]},
    "/stripe/products/{product_id}": {"product_id": product["id"]},
    "/stripe/prices/{price_id}": {"price_id": price["id"]},
    "/stripe/payment_links/{payment_link_id}": {"payment_link_id": link["id"]},
    "/stripe/webhooks/{webhook_id}": {"webhook_id": webhook["id"]},
    "/stripe/webhooks/{webhook_id}/secrets": {"webhook_id": webhook["id"]},
    "/stripe/sync/jobs/{job_id}": {"job_id": job["id"]},
    "/stripe/{url_id}/webhook": {"url_id": webhook["attributes"]["url_id"]},
}
for path, parameters in ids.items():
    print("[[operations]]")
    print(f"include-path = {json.dumps(path)}")
    values = ", ".join(f'"path.{k}" = {json.dumps(v)}' for k, v in parameters.items())
    print(f"parameters = {{ {values} }}")
    print()
