// fablab_node: the reference firmware of fablab-ops for an ESP32 on a machine's supply.
//
// It speaks docs/mqtt.md. It measures the machine's current with an SCT-013 clamp and
// reports off / idle / running (or error, from an optional alarm contact) with the power
// draw, on every change and at least every 25 s. When an interlock is fitted, it closes
// the machine's contactor only while fablab-ops has enabled it for a checked-in
// reservation, and opens it again at `until` by itself, network or not.
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
static const char TOPIC_COMMAND[] = TOPIC_PREFIX "/command";
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
static const size_t COMMAND_MAX = 512;
static const size_t ID_MAX = 64;
static const int INBOX_SIZE = 4;
static const int REMEMBERED = 8;                   // recent command ids, to answer redeliveries alike

enum MachineState : uint8_t { STATE_OFF, STATE_IDLE, STATE_RUNNING, STATE_ERROR };
static const char *const STATE_NAMES[] = {"off", "idle", "running", "error"};

struct Command {  // received inside mqtt.loop(), handled after it
  char payload[COMMAND_MAX + 1];
  int length;     // -1: longer than COMMAND_MAX
};

struct Answer {   // how a recent command was answered
  char id[ID_MAX + 1];
  bool ok;
  const char *reason;
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
int64_t enabledUntil = 0;  // Unix seconds, 0 when not enabled; kept in flash across restarts
bool relayClosed = false;
uint32_t lastReportMs = 0;
uint32_t lastConnectMs = 0;
uint32_t connectBackoffMs = 1000;
Command inbox[INBOX_SIZE];
int inboxHead = 0;
int inboxCount = 0;
Answer answers[REMEMBERED];
int answersNext = 0;

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

// --- interlock --------------------------------------------------------------------------

// Without a set clock `until` cannot be judged, so the contactor stays open.
bool interlockClosed() {
  return HAS_INTERLOCK && enabledUntil > 0 && clockSet() && (int64_t)time(nullptr) < enabledUntil;
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
void setUntil(int64_t until) {
  if (until == enabledUntil) return;
  enabledUntil = until;
  settings.putLong64("until", until);
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
  char payload[192];
  const size_t length = serializeJson(doc, payload, sizeof payload);
  // The seq is spent even when the publish fails half-way: if the broker never got the
  // message, the service counts it lost, which is the truth.
  seq++;
  lastReportMs = millis();
  return mqtt.publish(TOPIC_STATE, payload, (int)length, false, 1);
}

void publishAck(const char *id, bool ok, const char *reason) {
  JsonDocument doc;
  doc["id"] = id;  // null when the command carried no usable id
  doc["ok"] = ok;
  if (reason != nullptr) doc["reason"] = reason;
  char payload[256];
  const size_t length = serializeJson(doc, payload, sizeof payload);
  mqtt.publish(TOPIC_ACK, payload, (int)length, false, 1);
}

const Answer *answerFor(const char *id) {
  for (const Answer &answer : answers) {
    if (strcmp(answer.id, id) == 0) return &answer;
  }
  return nullptr;
}

void remember(const char *id, bool ok, const char *reason) {
  Answer &answer = answers[answersNext];
  answersNext = (answersNext + 1) % REMEMBERED;
  strlcpy(answer.id, id, sizeof answer.id);
  answer.ok = ok;
  answer.reason = reason;
}

// Applies an enable or a disable; false, with the reason, when it cannot.
bool obey(JsonObject command, const char *&reason) {
  JsonVariant user = command["user"];
  if (!user.isNull() && !user.is<const char *>()) {
    reason = "malformed command: `user` must be a string";
    return false;
  }
  const char *action = command["action"].as<const char *>();
  if (action != nullptr && strcmp(action, "enable") == 0) {
    const int64_t until = parseRfc3339(command["until"].as<const char *>());
    if (until < 0) {
      reason = "malformed command: enable needs `until` in RFC 3339 with an offset";
      return false;
    }
    if (!clockSet()) {
      reason = "clock not set yet: cannot judge `until`";
      return false;
    }
    if (until <= (int64_t)time(nullptr)) {
      reason = "`until` has already passed";
      return false;
    }
    setUntil(until);
  } else if (action != nullptr && strcmp(action, "disable") == 0) {
    setUntil(0);
  } else {
    reason = "malformed command: unknown action";
    return false;
  }
  applyInterlock();  // now, not at the next turn of loop()
  if (!HAS_INTERLOCK) reason = "no interlock fitted: nothing to switch";
  return true;
}

// Obeys a command and answers it; a redelivery (QoS 1) gets the first answer again, unapplied.
void handleCommand(const Command &command) {
  if (command.length < 0) return publishAck(nullptr, false, "malformed command: too long");
  JsonDocument doc;
  if (deserializeJson(doc, command.payload, command.length)) {
    return publishAck(nullptr, false, "malformed command: not JSON");
  }
  if (!doc.is<JsonObject>()) return publishAck(nullptr, false, "malformed command: not a JSON object");
  const char *id = doc["id"].as<const char *>();
  if (id == nullptr || id[0] == '\0' || strlen(id) > ID_MAX) {
    return publishAck(nullptr, false, "malformed command: `id` must be a non-empty string");
  }
  const Answer *previous = answerFor(id);
  if (previous != nullptr) return publishAck(id, previous->ok, previous->reason);
  const char *reason = nullptr;
  const bool ok = obey(doc.as<JsonObject>(), reason);
  remember(id, ok, reason);
  publishAck(id, ok, reason);
}

// Runs inside mqtt.loop(), or while a publish waits for its PUBACK: the library forbids
// publishing from here, so the command waits in the inbox for loop(). With the inbox full
// the command goes unanswered, which the service shows as such.
void onMessage(MQTTClient *, char topic[], char bytes[], int length) {
  if (strcmp(topic, TOPIC_COMMAND) != 0 || inboxCount == INBOX_SIZE) return;
  Command &command = inbox[(inboxHead + inboxCount) % INBOX_SIZE];
  command.length = length > (int)COMMAND_MAX ? -1 : length;
  if (command.length > 0) memcpy(command.payload, bytes, command.length);
  command.payload[command.length > 0 ? command.length : 0] = '\0';
  inboxCount++;
}

void handleInbox() {
  while (inboxCount > 0) {
    handleCommand(inbox[inboxHead]);  // its ack's publish may queue more commands behind it
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
  mqtt.subscribe(TOPIC_COMMAND, 1);
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
  enabledUntil = settings.getLong64("until", 0);

  WiFi.mode(WIFI_STA);
  WiFi.setAutoReconnect(true);
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  bootId = esp_random();  // with the radio on, a true random number
  configTime(0, 0, NTP_SERVER_1, NTP_SERVER_2);  // UTC: reports say "Z", commands carry their own offset

#if MQTT_TLS
  net.setCACert(MQTT_CA_CERT);
#endif
  mqtt.begin(MQTT_HOST, MQTT_PORT, net);
  mqtt.setKeepAlive(KEEPALIVE_S);
  mqtt.setCleanSession(true);
  mqtt.setTimeout(MQTT_TIMEOUT_MS);
  mqtt.setWill(TOPIC_STATUS, "offline", true, 1);
  mqtt.onMessageAdvanced(onMessage);
  Serial.printf("fablab_node %s, boot %08lx\n", DEVICE_NAME, (unsigned long)bootId);
}

void loop() {
  applyInterlock();  // first: `until` holds with the network down
  rawAmps = measureAmps();  // 200 ms
  const double noise = CLAMP_NOISE_AMPS;
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
