#!/usr/bin/env bash
# stripe-event.sh — plays Stripe's part on the local stack: sends the signed
# webhook Stripe would send about a payment, to marquee-server's
# /webhooks/stripe. stripe-mock (the local Stripe) keeps no state and sends
# no webhooks, so this is how a local payment reaches "succeeded".
#
#   scripts/stripe-event.sh PAYMENT_ID [TYPE]
#
# TYPE: payment_intent.succeeded (default), payment_intent.payment_failed,
# payment_intent.canceled or payment_intent.processing. The payment is read
# with GetPayment as the caller (MARQUEE_CLI_TOKEN, as the CLI uses it); the
# event is signed with the development webhook secret scripts/run.sh made
# (.stack/dev-stripe-webhook-secret, or MARQUEE_STRIPE_WEBHOOK_SECRET) by
# Stripe's scheme: HMAC-SHA256 over "<unix time>.<body>", sent as
# "Stripe-Signature: t=<time>,v1=<hex>".
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${MARQUEE_STACK_DIR:-$(pwd)/.stack}
pid=${1:?usage: scripts/stripe-event.sh PAYMENT_ID [TYPE]}
type=${2:-payment_intent.succeeded}
target=${MARQUEE_CLI_TARGET:-127.0.0.1:50051}
http=${MARQUEE_HTTP_LISTEN:-127.0.0.1:9464}
secret=${MARQUEE_STRIPE_WEBHOOK_SECRET:-$(cat "$stack/dev-stripe-webhook-secret")}
: "${MARQUEE_CLI_TOKEN:?sign in first (eval \"\$(build/marquee signin EMAIL)\")}"
json=$("$stack/bin/grpcurl" -plaintext -H "authorization: Bearer $MARQUEE_CLI_TOKEN" \
  -d "{\"payment_id\":\"$pid\"}" "$target" marquee.payments.v1.PaymentService/GetPayment)
read -r ref amount currency < <(python3 -c '
import json, sys
p = json.load(sys.stdin)
print(p.get("gatewayReference", ""), p["amount"].get("amountMinor", "0"), p["amount"]["currency"].lower())' <<<"$json")
[ -n "$ref" ] || { echo "stripe-event: payment $pid has no Stripe reference" >&2; exit 1; }
case $type in
  payment_intent.succeeded) status=succeeded received=$amount ;;
  payment_intent.payment_failed) status=requires_payment_method received=0 ;;
  payment_intent.canceled) status=canceled received=0 ;;
  payment_intent.processing) status=processing received=0 ;;
  *) echo "stripe-event: unknown type $type" >&2; exit 2 ;;
esac
t=$(date +%s)
body="{\"id\":\"evt_local_${t}_$$\",\"object\":\"event\",\"type\":\"$type\",\"created\":$t,\"data\":{\"object\":{\"id\":\"$ref\",\"object\":\"payment_intent\",\"status\":\"$status\",\"amount\":$amount,\"amount_received\":$received,\"currency\":\"$currency\",\"metadata\":{\"payment_id\":\"$pid\"}}}}"
sig=$(printf '%s' "$t.$body" | openssl dgst -sha256 -hmac "$secret" | awk '{print $NF}')
curl -sS -H "Stripe-Signature: t=$t,v1=$sig" -H 'Content-Type: application/json' --data-binary "$body" \
  "http://$http/webhooks/stripe"
