// fablab_node: the reference firmware of fablab-ops for an ESP32 on a machine's supply.
//
// It speaks docs/mqtt.md, protocol 2. It measures the machine's current with an SCT-013
// clamp and reports off / idle / running (or error, from an optional alarm contact) with
// the power draw, the seconds spent running and the energy drawn since boot, and the
// version of the desired state it holds, on every change and at least every 25 s. When
// an interlock is fitted, it closes the machine's contactor only while the desired state
// fablab-ops retains for it says so: a holder, between `from` and `until` on the node's
// own clock, then `next` from its `from`. Nothing has to arrive at a boundary, so the
// network can be down at the end of one reservation and the start of the next.
//
// MQTT client: "MQTT" by Joel Gaehwiler (lwmqtt). The protocol wants QoS 1 reports,
// which PubSubClient cannot publish, and optional TLS, which AsyncMqttClient does not
// offer on the ESP32. JSON: ArduinoJson 7.

#include <Arduino.h>
#include <ArduinoJson.h>
#include <MQTT.h>
#include <Preferences.h>
#include <WiFi.h>
#include <WiFiClientSecure.h>
#include <ctype.h>
#include <esp_random.h>
#include <math.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#if __has_include("config.h")
#include "config.h"
#else
#error "copy config.example.h to config.h and fill it in (see devices/firmware/README.md)"
#endif

#define TOPIC_PREFIX "fablab/" LAB_SLUG "/" MACHINE_SLUG
static const char TOPIC_STATE[] = TOPIC_PREFIX "/state";
static const char TOPIC_STATUS[] = TOPIC_PREFIX "/status";
static const char TOPIC_DESIRED[] = TOPIC_PREFIX "/desired";
static const char TOPIC_ACK[] = TOPIC_PREFIX "/ack";
static const char DEVICE_NAME[] = LAB_SLUG "." MACHINE_SLUG;  // MQTT user and client id

static const uint32_t HEARTBEAT_MS = 25000;        // 30 s at most says the protocol: room for a slow publish
static const int KEEPALIVE_S = 30;                 // the broker publishes our will ~45 s after we vanish
static const int MQTT_TIMEOUT_MS = 2000;
static const int MQTT_BUFFER_BYTES = 1024;
static const int CYCLES = 10;                      // whole mains cycles per measurement: an RMS without ripple
static const uint32_t SAMPLE_US = 250;             // 4 kHz: 80 samples per 50 Hz cycle
static const float HYSTERESIS = 0.8f;              // leave a state only 20 % below its threshold
static const int CONFIRMATIONS = 3;                // measurements in a row before a new state counts (~0.6 s)
static const time_t CLOCK_SET_AFTER = 1700000000;  // 2023-11-14: before that, NTP has not set the clock yet
static const size_t MESSAGE_MAX = 768;            // a desired state with two Vietnamese names fits easily
static const int INBOX_SIZE = 4;
static const uint64_t MAX_VERSION = 9007199254740992ULL;  // 2^53, the protocol's bound

enum MachineState : uint8_t { STATE_OFF, STATE_IDLE, STATE_RUNNING, STATE_ERROR };
static const char *const STATE_NAMES[] = {"off", "idle", "running", "error"};

struct Message {  // received inside mqtt.loop(), handled after it
  char payload[MESSAGE_MAX + 1];
  int length;     // -1: longer than MESSAGE_MAX
};

// One grant of a desired state: the interlock may close from `from` until `until` (0: no end) if it has a holder.
struct Grant {
  bool holder;
  int64_t from;    // Unix seconds
  int64_t until;   // Unix seconds, 0: until further notice
  int64_t reservation;  // -1: none (a technician's maintenance)
};

// The desired state as kept in flash: the version, the current grant and the next one (if any).
struct Desired {
  uint64_t version;  // 0: none received yet
  Grant current;
  bool hasNext;
  Grant next;
};

#if MQTT_TLS
WiFiClientSecure net;
#else
WiFiClient net;
#endif
MQTTClient mqtt(MQTT_BUFFER_BYTES);
Preferences settings;

uint32_t bootId;           // random at every start: (boot, seq) is the service's key for a report
uint32_t seq = 0;          // reports since boot; the first one is 1
MachineState state = STATE_OFF;
MachineState candidate = STATE_OFF;
int candidateCount = 0;
float rawAmps = 0;         // before the noise floor is removed: what CLAMP_NOISE_AMPS is calibrated from
float powerW = 0;
Desired desired = {};      // kept in flash across restarts
bool relayClosed = false;
double runSeconds = 0;     // in state running since boot
double energyWh = 0;       // drawn since boot
uint32_t lastCountMs = 0;
uint32_t lastReportMs = 0;
uint32_t lastConnectMs = 0;
uint32_t connectBackoffMs = 1000;
Message inbox[INBOX_SIZE];
int inboxHead = 0;
int inboxCount = 0;

// --- time ---------------------------------------------------------------------------

bool clockSet() { return time(nullptr) > CLOCK_SET_AFTER; }

// Now in RFC 3339, UTC with milliseconds: "2026-10-14T02:12:03.512Z".
void formatNow(char *out, size_t size) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm utc;
  gmtime_r(&tv.tv_sec, &utc);
  const size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(out + n, size - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's days_from_civil).
int64_t daysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (int64_t)era * 146097 + doe - 719468;
}

// The value of `count` decimal digits at `p`, or -1.
int digits(const char *p, int count) {
  int value = 0;
  for (int i = 0; i < count; i++) {
    if (!isdigit((unsigned char)p[i])) return -1;
    value = value * 10 + (p[i] - '0');
  }
  return value;
}

// Unix seconds of an RFC 3339 time with an offset ("2026-10-14T11:00:00+07:00",
// "2026-10-14T04:00:00.250Z"); -1 when malformed or without an offset, which would be ambiguous.
int64_t parseRfc3339(const char *text) {
  if (text == nullptr || strlen(text) < 20) return -1;
  const int y = digits(text, 4), mo = digits(text + 5, 2), d = digits(text + 8, 2);
  const int h = digits(text + 11, 2), mi = digits(text + 14, 2), s = digits(text + 17, 2);
  if (text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') ||
      text[13] != ':' || text[16] != ':' || y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
      mi < 0 || mi > 59 || s < 0 || s > 60) {
    return -1;
  }
  const char *p = text + 19;
  if (*p == '.') {  // fractions of a second: dropped
    p++;
    if (!isdigit((unsigned char)*p)) return -1;
    while (isdigit((unsigned char)*p)) p++;
  }
  int offset = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if ((*p == '+' || *p == '-') && digits(p + 1, 2) >= 0 && p[3] == ':' && digits(p + 4, 2) >= 0) {
    offset = (digits(p + 1, 2) * 60 + digits(p + 4, 2)) * 60 * (*p == '-' ? -1 : 1);
    p += 6;
  } else {
    return -1;
  }
  if (*p != '\0') return -1;
  return daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset;
}

// --- measurement and state ------------------------------------------------------------

// RMS amps in the conductor over whole mains cycles. The clamp's signal rides on the
// mid-rail bias; the variance leaves the bias out, whatever its exact value.
float measureAmps() {
  const uint32_t windowUs = 1000000UL / MAINS_HZ * CYCLES;
  double sum = 0, sumSquares = 0;
  uint32_t samples = 0;
  const uint32_t start = micros();
  for (uint32_t next = start; (uint32_t)(micros() - start) < windowUs; next += SAMPLE_US) {
    while ((int32_t)(micros() - next) < 0) {
    }
    const double millivolts = analogReadMilliVolts(CLAMP_PIN);  // calibrated by the chip's eFuse values
    sum += millivolts;
    sumSquares += millivolts * millivolts;
    samples++;
  }
  const double mean = sum / samples;
  const double vrms = sqrt(fmax(0.0, sumSquares / samples - mean * mean)) / 1000.0;
  return (float)(vrms * CLAMP_AMPS_PER_VOLT);
}

// The state the power says; hysteresis keeps a machine hovering at a threshold from flapping.
MachineState observe(float watts) {
#if FAULT_PIN >= 0
  if (digitalRead(FAULT_PIN) == FAULT_ACTIVE_LEVEL) return STATE_ERROR;
#endif
  if (watts >= RUNNING_WATTS || (state == STATE_RUNNING && watts >= RUNNING_WATTS * HYSTERESIS)) {
    return STATE_RUNNING;
  }
  if (watts >= IDLE_WATTS || (state != STATE_OFF && watts >= IDLE_WATTS * HYSTERESIS)) return STATE_IDLE;
  return STATE_OFF;
}

// True when the machine has settled in a new state (seen in CONFIRMATIONS measurements in a row).
bool settle(MachineState seen) {
  if (seen != candidate) {
    candidate = seen;
    candidateCount = 0;
  }
  if (candidateCount < CONFIRMATIONS) candidateCount++;
  if (candidate == state || candidateCount < CONFIRMATIONS) return false;
  state = candidate;
  return true;
}

// The counters since boot: the time since the last measurement counts in the state it was in.
void count() {
  const uint32_t nowMs = millis();
  const double seconds = (uint32_t)(nowMs - lastCountMs) / 1000.0;
  lastCountMs = nowMs;
  if (state == STATE_RUNNING) runSeconds += seconds;
  energyWh += powerW * seconds / 3600.0;
}

// --- interlock --------------------------------------------------------------------------

// The grant in force at `now`: `next` takes over when the clock reaches its `from`.
const Grant &grantAt(int64_t now) {
  return desired.hasNext && now >= desired.next.from ? desired.next : desired.current;
}

// Without a set clock `from` and `until` cannot be judged, so the contactor stays open.
bool interlockClosed() {
  if (!HAS_INTERLOCK || desired.version == 0 || !clockSet()) return false;
  const int64_t now = (int64_t)time(nullptr);
  const Grant &grant = grantAt(now);
  return grant.holder && grant.from <= now && (grant.until == 0 || now < grant.until);
}

void applyInterlock() {
#if HAS_INTERLOCK
  const bool closed = interlockClosed();
  digitalWrite(RELAY_PIN, closed ? RELAY_ON_LEVEL : RELAY_OFF_LEVEL);
  if (closed != relayClosed) {
    relayClosed = closed;
    Serial.printf("interlock %s\n", closed ? "closed" : "open");
  }
#endif
}

// In flash, so that a learner whose machine blinked keeps it until the end of the reservation.
void storeDesired(const Desired &newer) {
  desired = newer;
  settings.putBytes("desired", &desired, sizeof desired);
}

void loadDesired() {
  Desired stored = {};
  if (settings.getBytesLength("desired") == sizeof stored &&
      settings.getBytes("desired", &stored, sizeof stored) == sizeof stored) {
    desired = stored;
  }
}

// --- MQTT ---------------------------------------------------------------------------------

// A state report at QoS 1; false when there is no connection to send it on.
bool report() {
  if (!mqtt.connected()) return false;
  char ts[32];
  formatNow(ts, sizeof ts);
  JsonDocument doc;
  doc["seq"] = seq + 1;
  doc["boot"] = bootId;
  doc["ts"] = ts;
  doc["state"] = STATE_NAMES[state];
  doc["power_w"] = serialized(String(powerW, 1));
  doc["run_s"] = serialized(String(runSeconds, 1));
  doc["energy_wh"] = serialized(String(energyWh, 2));
  doc["desired_v"] = desired.version;
  char payload[256];
  const size_t length = serializeJson(doc, payload, sizeof payload);
  // The seq is spent even when the publish fails half-way: if the broker never got the
  // message, the service counts it lost, which is the truth.
  seq++;
  lastReportMs = millis();
  return mqtt.publish(TOPIC_STATE, payload, (int)length, false, 1);
}

// `v` is null when the message had none that could be read.
void publishAck(bool hasVersion, uint64_t version, bool ok, const char *reason) {
  JsonDocument doc;
  if (hasVersion) {
    doc["v"] = version;
  } else {
    doc["v"] = nullptr;
  }
  doc["ok"] = ok;
  if (reason != nullptr) doc["reason"] = reason;
  char payload[256];
  const size_t length = serializeJson(doc, payload, sizeof payload);
  mqtt.publish(TOPIC_ACK, payload, (int)length, false, 1);
}

// Reads one grant ({"holder", "reservation", "from", "until"}); false, with the reason, when malformed.
bool readGrant(JsonObject object, Grant &grant, const char *&reason) {
  JsonVariant holder = object["holder"];
  if (!holder.isNull() && !holder.is<const char *>()) {
    reason = "malformed desired state: `holder` must be a string or null";
    return false;
  }
  JsonVariant reservation = object["reservation"];
  if (!reservation.isNull() && !reservation.is<int64_t>()) {
    reason = "malformed desired state: `reservation` must be an integer or null";
    return false;
  }
  const int64_t from = parseRfc3339(object["from"].as<const char *>());
  if (from < 0) {
    reason = "malformed desired state: `from` must be RFC 3339 with an offset";
    return false;
  }
  int64_t until = 0;
  if (!object["until"].isNull()) {
    until = parseRfc3339(object["until"].as<const char *>());
    if (until < 0) {
      reason = "malformed desired state: `until` must be RFC 3339 with an offset, or null";
      return false;
    }
  }
  grant.holder = !holder.isNull();
  grant.from = from;
  grant.until = until;
  grant.reservation = reservation.isNull() ? -1 : reservation.as<int64_t>();
  return true;
}

// Applies a desired state if it is newer than the one held, and answers it. QoS 1 may deliver an old version
// again, or after a newer one: it is acknowledged and changes nothing.
void handleDesired(const Message &message) {
  if (message.length <= 0) return;  // an empty retained message: the service cleared the topic
  JsonDocument doc;
  if (deserializeJson(doc, message.payload, message.length)) {
    return publishAck(false, 0, false, "malformed desired state: not JSON");
  }
  if (!doc.is<JsonObject>()) return publishAck(false, 0, false, "malformed desired state: not a JSON object");
  JsonVariant v = doc["v"];
  if (!v.is<uint64_t>() || v.as<uint64_t>() == 0 || v.as<uint64_t>() > MAX_VERSION) {
    return publishAck(false, 0, false, "malformed desired state: `v` must be a positive integer");
  }
  const uint64_t version = v.as<uint64_t>();
  if (version <= desired.version) return publishAck(true, version, true, "already holding a version as new");
  Desired newer = {};
  newer.version = version;
  const char *reason = nullptr;
  if (!readGrant(doc.as<JsonObject>(), newer.current, reason)) return publishAck(true, version, false, reason);
  JsonVariant next = doc["next"];
  if (!next.isNull()) {
    if (!next.is<JsonObject>()) {
      return publishAck(true, version, false, "malformed desired state: `next` must be an object or null");
    }
    if (!readGrant(next.as<JsonObject>(), newer.next, reason)) return publishAck(true, version, false, reason);
    newer.hasNext = true;
  }
  storeDesired(newer);
  applyInterlock();  // now, not at the next turn of loop()
  publishAck(true, version, true, HAS_INTERLOCK ? nullptr : "no interlock fitted: nothing to switch");
}

// Runs inside mqtt.loop(), or while a publish waits for its PUBACK: the library forbids
// publishing from here, so the message waits in the inbox for loop(). With the inbox full
// it goes unanswered; the retained message comes again at the next connection.
void onMessage(MQTTClient *, char topic[], char bytes[], int length) {
  if (strcmp(topic, TOPIC_DESIRED) != 0 || inboxCount == INBOX_SIZE) return;
  Message &message = inbox[(inboxHead + inboxCount) % INBOX_SIZE];
  message.length = length > (int)MESSAGE_MAX ? -1 : length;
  if (message.length > 0) memcpy(message.payload, bytes, message.length);
  message.payload[message.length > 0 ? message.length : 0] = '\0';
  inboxCount++;
}

void handleInbox() {
  while (inboxCount > 0) {
    const Message &message = inbox[inboxHead];
    if (message.length < 0) {
      publishAck(false, 0, false, "malformed desired state: too long");
    } else {
      handleDesired(message);  // its ack's publish may queue more messages behind it
    }
    inboxHead = (inboxHead + 1) % INBOX_SIZE;
    inboxCount--;
  }
}

// One attempt, spaced out by a backoff: measuring and the interlock go on meanwhile.
void connectMqtt() {
  if (millis() - lastConnectMs < connectBackoffMs) return;
  lastConnectMs = millis();
  if (!mqtt.connect(DEVICE_NAME, DEVICE_NAME, MQTT_PASSWORD)) {
    Serial.printf("MQTT connection failed: error %d, return code %d\n", (int)mqtt.lastError(),
                  (int)mqtt.returnCode());
    connectBackoffMs = connectBackoffMs >= 15000 ? 30000 : connectBackoffMs * 2;
    return;
  }
  connectBackoffMs = 1000;
  mqtt.publish(TOPIC_STATUS, "online", true, 1);
  mqtt.subscribe(TOPIC_DESIRED, 1);  // the broker hands us the retained desired state at once
  report();  // the current state at once, not at the next heartbeat
}

// --- Arduino ------------------------------------------------------------------------------

void setup() {
  Serial.begin(115200);
#if HAS_INTERLOCK
  pinMode(RELAY_PIN, OUTPUT);
  digitalWrite(RELAY_PIN, RELAY_OFF_LEVEL);  // never power a machine before being told to
#endif
#if FAULT_PIN >= 0
  pinMode(FAULT_PIN, INPUT_PULLUP);
#endif
  analogReadResolution(12);
  settings.begin("fablab", false);
  loadDesired();

  WiFi.mode(WIFI_STA);
  WiFi.setAutoReconnect(true);
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  bootId = esp_random();  // with the radio on, a true random number
  configTime(0, 0, NTP_SERVER_1, NTP_SERVER_2);  // UTC: reports say "Z", desired states carry their own offset

#if MQTT_TLS
  net.setCACert(MQTT_CA_CERT);
#endif
  mqtt.begin(MQTT_HOST, MQTT_PORT, net);
  mqtt.setKeepAlive(KEEPALIVE_S);
  mqtt.setCleanSession(true);
  mqtt.setTimeout(MQTT_TIMEOUT_MS);
  mqtt.setWill(TOPIC_STATUS, "offline", true, 1);
  mqtt.onMessageAdvanced(onMessage);
  lastCountMs = millis();
  Serial.printf("fablab_node %s, boot %08lx, desired v%llu\n", DEVICE_NAME, (unsigned long)bootId,
                (unsigned long long)desired.version);
}

void loop() {
  applyInterlock();  // first: `from`, `until` and `next` hold with the network down
  rawAmps = measureAmps();  // 200 ms
  const double noise = CLAMP_NOISE_AMPS;
  count();  // the last 200 ms in the state and at the power measured before
  powerW = (float)(sqrt(fmax(0.0, (double)rawAmps * rawAmps - noise * noise)) * MAINS_VOLTS);
  const bool changed = settle(observe(powerW));
  if (changed) Serial.printf("now %s at %.1f W\n", STATE_NAMES[state], powerW);

  // TLS needs the clock to check the broker's certificate, and reports need it for `ts`.
  if (WiFi.status() == WL_CONNECTED && clockSet()) {
    if (mqtt.connected()) {
      mqtt.loop();
      handleInbox();
    } else {
      connectMqtt();
    }
  }
  if ((changed || millis() - lastReportMs >= HEARTBEAT_MS) && report()) {
    Serial.printf("report %lu: %s, %.1f W (raw %.3f A)\n", (unsigned long)seq, STATE_NAMES[state], powerW, rawAmps);
  }
}
