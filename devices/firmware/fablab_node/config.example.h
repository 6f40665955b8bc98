// Settings of one fablab_node. Copy to config.h and fill it in; config.h holds this
// machine's MQTT password, so it stays on the bench where the node is flashed and
// never goes into version control.
#pragma once

// --- Network ---------------------------------------------------------------------
#define WIFI_SSID          "Fablab-BIIC"
#define WIFI_PASSWORD      "change-me"
#define NTP_SERVER_1       "vn.pool.ntp.org"
#define NTP_SERVER_2       "time.google.com"

// --- Broker ----------------------------------------------------------------------
#define MQTT_HOST          "mqtt.fablab.example.vn"
#define MQTT_PORT          1883     // 8883 with TLS
#define MQTT_TLS           0        // 1: TLS, verifying the broker against MQTT_CA_CERT
// PEM of the CA that signed the broker's certificate (only read when MQTT_TLS is 1).
#define MQTT_CA_CERT \
  "-----BEGIN CERTIFICATE-----\n" \
  "...\n" \
  "-----END CERTIFICATE-----\n"

// --- This machine, as in the service's registry ------------------------------------
// Its MQTT user is "{lab}.{machine}"; the password is the one `manage.py mqtt_credentials
// --output-dir DIR` keeps for it in DIR/devices.json.
#define LAB_SLUG           "biic"
#define MACHINE_SLUG       "laser-01"
#define MQTT_PASSWORD      "from-the-registry"

// --- Current measurement -----------------------------------------------------------
#define CLAMP_PIN          34       // an ADC1 pin (GPIO 32-39): ADC2 cannot be read while WiFi is on
// Amps in the conductor per volt RMS at the pin: 30 for an SCT-013-030 (30 A gives 1 V);
// for a current-output SCT-013-000 (2000 turns) with burden R ohms: 2000 / R.
#define CLAMP_AMPS_PER_VOLT 30.0
// What the node reads with the machine switched off (the "raw" amps on the serial log):
// ADC noise, removed in quadrature so that a machine at rest does not look idle.
#define CLAMP_NOISE_AMPS   0.0
#define MAINS_VOLTS        220.0    // nominal RMS voltage of the supply (Vietnam: 220 V)
#define MAINS_HZ           50
// State thresholds on the apparent power (MAINS_VOLTS x Irms), with 20 % hysteresis below them.
// Laser cutter: idle ~20-30 W, cutting 1-1.5 kW. See devices/firmware/README.md for other machines.
#define IDLE_WATTS         10.0     // from here on the machine is on: idle
#define RUNNING_WATTS      300.0    // from here on it is running a job

// --- Interlock -----------------------------------------------------------------------
#define HAS_INTERLOCK      1        // 0: the machine is only measured, never switched
#define RELAY_PIN          26       // drives the contactor's coil through a relay driver or an SSR
#define RELAY_ON_LEVEL     HIGH     // the pin level that closes the contactor
#define RELAY_OFF_LEVEL    LOW

// --- Optional fault input ------------------------------------------------------------
// A dry contact from the machine's own alarm (chiller flow, spindle fault…) reported as
// `error`; -1 when there is none.
#define FAULT_PIN          -1
#define FAULT_ACTIVE_LEVEL LOW      // the contact pulls the pin (INPUT_PULLUP) to GND on a fault
