/*
 * mq_event_catalog.c — see mq_event_catalog.h. The Markdown is built from
 * the table and from the descriptor set embedded for server reflection
 * (with its source comments).
 */
#include "lib/mq_event_catalog.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_xmalloc.h"
#include "google/protobuf/descriptor.pb-c.h"

extern const unsigned char mq_descriptor_set[];
extern const size_t mq_descriptor_set_len;

const mq_event_kind_t mq_event_kinds[] = {
    {100, "system.NoteRecorded", "marquee.system", "the note id"},
    {110, "users.UserRegistered", "marquee.users", "the user id"},
    {111, "users.PasswordChanged", "marquee.users", "the user id"},
    {112, "users.UserProfileUpdated", "marquee.users", "the user id"},
    {113, "users.UserSignedOutEverywhere", "marquee.users", "the user id"},
    {114, "users.RefreshTokenReuseDetected", "marquee.users", "the user id"},
    {115, "users.EmailVerificationRequested", "marquee.users", "the user id"},
    {116, "users.EmailVerified", "marquee.users", "the user id"},
    {117, "users.PasswordResetRequested", "marquee.users", "the user id"},
    {118, "users.RoleChanged", "marquee.users", "the user id"},
    {119, "users.UserSuspended", "marquee.users", "the user id"},
    {120, "users.UserReinstated", "marquee.users", "the user id"},
    {121, "organizations.OrganizationCreated", "marquee.users", "the organization id"},
    {122, "organizations.OrganizationMemberAdded", "marquee.users", "the organization id"},
    {123, "organizations.OrganizationMemberRemoved", "marquee.users", "the organization id"},
    {124, "users.OAuthIdentityLinked", "marquee.users", "the user id"},
    {125, "users.OAuthIdentityUnlinked", "marquee.users", "the user id"},
    {126, "organizations.OrganizationMemberInvited", "marquee.users", "the organization id"},
    {130, "catalog.EventCreated", "marquee.events", "the catalog event id"},
    {131, "catalog.EventUpdated", "marquee.events", "the catalog event id"},
    {132, "catalog.EventPublished", "marquee.events", "the catalog event id"},
    {133, "catalog.EventCancelled", "marquee.events", "the catalog event id"},
    {134, "catalog.EventCompleted", "marquee.events", "the catalog event id"},
    {135, "catalog.EventDeleted", "marquee.events", "the catalog event id"},
    {136, "catalog.TicketTypeChanged", "marquee.events", "the catalog event id"},
    {137, "catalog.SeriesCreated", "marquee.events", "the series id"},
    {138, "catalog.SeriesUpdated", "marquee.events", "the series id"},
    {140, "catalog.CategoryChanged", "marquee.events", "the category id"},
    {143, "catalog.VenueChanged", "marquee.events", "the venue id"},
    {146, "catalog.ImageUploaded", "marquee.events", "the image id"},
    {147, "catalog.ImageDeleted", "marquee.events", "the image id"},
    {150, "bookings.HoldCreated", "marquee.bookings", "the hold id, which is also its booking's id"},
    {151, "bookings.HoldExpired", "marquee.bookings", "the hold id, which is also its booking's id"},
    {152, "bookings.HoldReleased", "marquee.bookings", "the hold id, which is also its booking's id"},
    {153, "bookings.HoldPaymentStarted", "marquee.bookings", "the hold id, which is also its booking's id"},
    {154, "bookings.BookingConfirmed", "marquee.bookings", "the hold id, which is also its booking's id"},
    {155, "bookings.BookingCancelled", "marquee.bookings", "the hold id, which is also its booking's id"},
    {156, "bookings.TicketCheckedIn", "marquee.bookings", "the hold id, which is also its booking's id"},
    {157, "bookings.TicketCheckInUndone", "marquee.bookings", "the hold id, which is also its booking's id"},
    {158, "bookings.AttendeeNameChanged", "marquee.bookings", "the hold id, which is also its booking's id"},
    {159, "bookings.TicketTypeMoved", "marquee.bookings", "the hold id, which is also its booking's id"},
    {160, "bookings.WaitlistOffered", "marquee.bookings", "the waitlist entry id"},
    {170, "payments.PaymentCreated", "marquee.payments", "the payment id"},
    {171, "payments.PaymentRequiresAction", "marquee.payments", "the payment id"},
    {172, "payments.PaymentSucceeded", "marquee.payments", "the payment id"},
    {173, "payments.PaymentFailed", "marquee.payments", "the payment id"},
    {174, "payments.PaymentCancelled", "marquee.payments", "the payment id"},
    {175, "payments.RefundIssued", "marquee.payments", "the payment id"},
    {176, "payments.RefundFailed", "marquee.payments", "the payment id"},
    {177, "payments.PaymentSettingsChanged", "marquee.payments", "the organization id"},
    {180, "analytics.EventViewed", "marquee.views", "the event id"},
    {190, "notifications.WebhookEndpointChanged", "marquee.notifications", "the endpoint id"},
};
const size_t mq_n_event_kinds = sizeof mq_event_kinds / sizeof mq_event_kinds[0];

const mq_event_kind_t *mq_event_kind(int payload_case) {
  for (size_t i = 0; i < mq_n_event_kinds; i++)
    if (mq_event_kinds[i].payload_case == payload_case) return &mq_event_kinds[i];
  return NULL;
}

/* ---- Markdown ------------------------------------------------------------------------- */

typedef struct {
  char *b;
  size_t n, cap;
} md_t;

static void put(md_t *m, const char *s) {
  size_t k = strlen(s);
  if (m->n + k + 1 > m->cap) {
    m->cap = (m->n + k + 1) * 2;
    m->b = mq_xrealloc(m->b, m->cap);
  }
  memcpy(m->b + m->n, s, k + 1);
  m->n += k;
}

/* The comment, on one line: whitespace runs become one space, '|' is escaped. */
static void put_comment(md_t *m, const char *c) {
  bool space = false;
  for (; c && *c; c++) {
    if (*c == ' ' || *c == '\n' || *c == '\t') {
      space = m->n > 0 && m->b[m->n - 1] != ' ' && m->b[m->n - 1] != '|';
      continue;
    }
    if (space) put(m, " ");
    space = false;
    char one[3] = {*c, 0, 0};
    if (*c == '|') {
      one[0] = '\\';
      one[1] = '|';
    }
    put(m, one);
  }
}

static const char *short_type(const Google__Protobuf__FieldDescriptorProto *f) {
  if (f->type_name) {
    const char *dot = strrchr(f->type_name, '.');
    return dot ? dot + 1 : f->type_name;
  }
  switch (f->type) {
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING:
      return "string";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL:
      return "bool";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64:
      return "int64";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32:
      return "uint32";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32:
      return "int32";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES:
      return "bytes";
    default:
      return "scalar";
  }
}

static const char *message_comment(const Google__Protobuf__FileDescriptorProto *fd, size_t index) {
  const Google__Protobuf__SourceCodeInfo *si = fd->source_code_info;
  for (size_t i = 0; si && i < si->n_location; i++) {
    const Google__Protobuf__SourceCodeInfo__Location *l = si->location[i];
    if (l->n_path == 2 && l->path[0] == 4 && (size_t)l->path[1] == index) return l->leading_comments;
  }
  return NULL;
}

char *mq_event_catalog_markdown(void) {
  Google__Protobuf__FileDescriptorSet *set =
      google__protobuf__file_descriptor_set__unpack(NULL, mq_descriptor_set_len, mq_descriptor_set);
  const Google__Protobuf__FileDescriptorProto *fd = NULL;
  for (size_t i = 0; set && i < set->n_file; i++)
    if (!strcmp(set->file[i]->name, "marquee/events/v1/envelope.proto")) fd = set->file[i];
  md_t m = {0};
  put(&m, "");
  static const char *const topics[] = {"marquee.system",   "marquee.users", "marquee.events",       "marquee.bookings",
                                       "marquee.payments", "marquee.views", "marquee.notifications"};
  for (size_t t = 0; fd && t < sizeof topics / sizeof *topics; t++) {
    put(&m, "### ");
    put(&m, topics[t]);
    put(&m, "\n\n| type | key (aggregate_id) | payload | what it says |\n|---|---|---|---|\n");
    for (size_t k = 0; k < mq_n_event_kinds; k++) {
      const mq_event_kind_t *e = &mq_event_kinds[k];
      if (strcmp(e->topic, topics[t])) continue;
      const char *name = strchr(e->type, '.') + 1;
      size_t mi = 0;
      while (mi < fd->n_message_type && strcmp(fd->message_type[mi]->name, name)) mi++;
      put(&m, "| `");
      put(&m, e->type);
      put(&m, "` | ");
      put(&m, e->key);
      put(&m, " | ");
      if (mi < fd->n_message_type) {
        const Google__Protobuf__DescriptorProto *d = fd->message_type[mi];
        for (size_t f = 0; f < d->n_field; f++) {
          char field[200];
          snprintf(
              field, sizeof field, "%s`%s` %s%s", f ? ", " : "", d->field[f]->name,
              d->field[f]->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED ? "repeated " : "",
              short_type(d->field[f]));
          put(&m, field);
        }
        put(&m, " | ");
        put_comment(&m, message_comment(fd, mi));
      } else {
        put(&m, "(no such message) | ");
      }
      put(&m, " |\n");
    }
    put(&m, "\n");
  }
  if (set) google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
  return m.b;
}

/* ---- webhooks ------------------------------------------------------------------------- */

/* Organization-scoped events an endpoint may subscribe to: each names its
 * organization (organization_id) or a catalog event whose organization the
 * webhooks consumer reads. Account events (personal, and some carry sealed
 * link tokens) are not offered. */
const char *const mq_webhook_event_types[] = {
    "catalog.EventCreated",
    "catalog.EventUpdated",
    "catalog.EventPublished",
    "catalog.EventCancelled",
    "catalog.EventCompleted",
    "catalog.EventDeleted",
    "catalog.TicketTypeChanged",
    "catalog.SeriesCreated",
    "catalog.SeriesUpdated",
    "catalog.VenueChanged",
    "bookings.BookingConfirmed",
    "bookings.BookingCancelled",
    "bookings.TicketCheckedIn",
    "bookings.TicketCheckInUndone",
    "bookings.AttendeeNameChanged",
    "payments.PaymentSucceeded",
    "payments.PaymentFailed",
    "payments.PaymentCancelled",
    "payments.RefundIssued",
    "organizations.OrganizationMemberAdded",
    "organizations.OrganizationMemberRemoved",
    "notifications.WebhookEndpointChanged",
    NULL,
};

bool mq_webhook_event_type_ok(const char *type) {
  for (size_t i = 0; type && mq_webhook_event_types[i]; i++)
    if (!strcmp(mq_webhook_event_types[i], type)) return true;
  return false;
}
