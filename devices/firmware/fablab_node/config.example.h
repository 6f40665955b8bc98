// Copy to config.h and fill in. The MQTT password comes from
// `python manage.py mqtt_credentials --output-dir … --registry devices.json` (shown once).
#pragma once

#define WIFI_SSID        "Fablab-BIIC"
#define WIFI_PASSWORD    "change-me"

#define MQTT_HOST        "mqtt.fablab.example.vn"
#define MQTT_PORT        1883
#define LAB_SLUG         "biic"
#define MACHINE_SLUG     "laser-01"
#define MQTT_USERNAME    LAB_SLUG "." MACHINE_SLUG   // one user per machine
#define MQTT_PASSWORD    "from-the-registry"

#define CLAMP_PIN        34      // ADC1 channel (ADC2 is unusable while WiFi is on)
#define RELAY_PIN        26      // drives the contactor coil through a relay module or SSR
#define HAS_INTERLOCK    1       // 0: the machine is only measured, never switched
#define CLAMP_AMPS_PER_VOLT 30.0 // SCT-013-030: 30 A gives 1 V
#define MAINS_VOLTS      230.0
#define IDLE_WATTS       15.0    // above this the machine is on (idle)
#define RUNNING_WATTS    80.0    // above this it is running a job
