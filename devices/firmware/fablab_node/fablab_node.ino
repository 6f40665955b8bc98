// fablab-ops reference firmware: an ESP32 on a machine's supply, speaking docs/mqtt.md.
//
// Measures the machine's current with an SCT-013 clamp, reports its state over MQTT
// (seq/boot/ts/state/power_w), and — when an interlock is fitted — switches the
// machine's contactor on only while the service has enabled it for a checked-in
// reservation, and off again at `until` even if no `disable` ever arrives.
//
// PubSubClient publishes at QoS 0 only; the retained status and last will are fine,
// but for QoS 1 state reports (what the service expects) use AsyncMqttClient with the
// same topics and payloads. The service's idempotency on (boot, seq) makes either safe.

#include <WiFi.h>
#include <PubSubClient.h>
#include <ArduinoJson.h>
#include <time.h>
#include "esp_random.h"
#include "config.h"

static const char *TOPIC_PREFIX = "fablab/" LAB_SLUG "/" MACHINE_SLUG;
static const unsigned long HEARTBEAT_MS = 30000;   // the service marks us offline after 90 s of silence
static const int SAMPLES_PER_CYCLE = 40;
static const int CYCLES = 10;                      // 10 cycles of 50 Hz mains = 200 ms

WiFiClient wifi;
PubSubClient mqtt(wifi);
uint32_t bootId;
uint32_t seq = 0;
String state = "off";
float powerW = 0;
time_t enabledUntil = 0;                           // 0: not enabled
unsigned long lastReport = 0;

String topic(const char *kind) { return String(TOPIC_PREFIX) + "/" + kind; }

String isoNow() {
  struct tm local;
  time_t now = time(nullptr);
  localtime_r(&now, &local);
  char text[40];
  strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S+07:00", &local);
  return String(text);
}

// RMS current over whole mains cycles, from a clamp biased at mid-rail (1.65 V).
float measureWatts() {
  const int n = SAMPLES_PER_CYCLE * CYCLES;
  double sum = 0, sumSq = 0;
  for (int i = 0; i < n; i++) {
    double volts = analogReadMilliVolts(CLAMP_PIN) / 1000.0;
    sum += volts;
    sumSq += volts * volts;
    delayMicroseconds(20000 / SAMPLES_PER_CYCLE);
  }
  double mean = sum / n;
  double vrms = sqrt(max(0.0, sumSq / n - mean * mean));
  return (float)(vrms * CLAMP_AMPS_PER_VOLT * MAINS_VOLTS);
}

// Hysteresis keeps a machine hovering at a threshold from flapping between states.
String stateFor(float watts) {
  if (state == "running" && watts > RUNNING_WATTS * 0.8) return "running";
  if (watts > RUNNING_WATTS) return "running";
  if (watts > IDLE_WATTS) return "idle";
  return "off";
}

bool enabled() { return !HAS_INTERLOCK || (enabledUntil != 0 && time(nullptr) < enabledUntil); }

void applyInterlock() {
  if (HAS_INTERLOCK) digitalWrite(RELAY_PIN, enabled() ? HIGH : LOW);
}

void report() {
  JsonDocument doc;
  doc["seq"] = ++seq;
  doc["boot"] = String(bootId, HEX);
  doc["ts"] = isoNow();
  doc["state"] = state;
  doc["power_w"] = round(powerW * 10) / 10.0;
  doc["device"] = LAB_SLUG "." MACHINE_SLUG;
  char payload[256];
  serializeJson(doc, payload);
  mqtt.publish(topic("state").c_str(), payload);
  lastReport = millis();
}

void ack(const char *id, bool ok, const char *reason) {
  JsonDocument doc;
  if (id) doc["id"] = id; else doc["id"] = nullptr;
  doc["ok"] = ok;
  if (reason) doc["reason"] = reason;
  char payload[256];
  serializeJson(doc, payload);
  mqtt.publish(topic("ack").c_str(), payload);
}

time_t parseUntil(const char *text) {
  // "2026-10-14T11:00:00+07:00": the service always sends local time with its +07:00 offset.
  struct tm t = {};
  if (!text || !strptime(text, "%Y-%m-%dT%H:%M:%S", &t)) return 0;
  return mktime(&t);  // TZ is set to ICT-7 below, so mktime reads it as local time
}

void onCommand(char *, byte *payload, unsigned int length) {
  JsonDocument doc;
  if (deserializeJson(doc, payload, length)) return ack(nullptr, false, "malformed command");
  const char *id = doc["id"];
  const char *action = doc["action"];
  if (action && strcmp(action, "enable") == 0) {
    time_t until = parseUntil(doc["until"]);
    if (!until) return ack(id, false, "enable needs an RFC 3339 `until`");
    enabledUntil = until;
  } else if (action && strcmp(action, "disable") == 0) {
    enabledUntil = 0;
  } else {
    return ack(id, false, "unknown action");
  }
  applyInterlock();
  ack(id, true, nullptr);
}

void connectMqtt() {
  while (!mqtt.connected()) {
    String clientId = String("device-") + LAB_SLUG + "-" + MACHINE_SLUG;
    // Last will: the broker tells the service we are gone if we vanish without saying so.
    if (mqtt.connect(clientId.c_str(), MQTT_USERNAME, MQTT_PASSWORD, topic("status").c_str(), 1, true, "offline")) {
      mqtt.publish(topic("status").c_str(), "online", true);
      mqtt.subscribe(topic("command").c_str(), 1);
      report();
    } else {
      delay(2000);
    }
  }
}

void setup() {
  Serial.begin(115200);
  pinMode(RELAY_PIN, OUTPUT);
  digitalWrite(RELAY_PIN, LOW);                    // never power a machine before we are told to
  analogReadResolution(12);
  bootId = esp_random();                           // a new boot id at every start: seq restarts at 1
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  while (WiFi.status() != WL_CONNECTED) delay(250);
  configTzTime("ICT-7", "pool.ntp.org", "time.google.com");
  while (time(nullptr) < 1700000000) delay(250);   // wait for NTP: reports need a true ts
  mqtt.setServer(MQTT_HOST, MQTT_PORT);
  mqtt.setCallback(onCommand);
  mqtt.setBufferSize(1024);
}

void loop() {
  if (!mqtt.connected()) connectMqtt();
  mqtt.loop();
  applyInterlock();                                // switches off by itself at `until`
  powerW = measureWatts();
  String next = stateFor(powerW);
  if (next != state || millis() - lastReport >= HEARTBEAT_MS) {
    state = next;
    report();
  }
}
