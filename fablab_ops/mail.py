"""The laptop demo's e-mail: each message saved to its own file, announced on the console in one line.

Django's console backend prints every message whole, base64 attachments included, which buries what the
console is for. This backend keeps Django's file-based one (EMAIL_FILE_PATH, `var/mail/` for `make run`)
but writes one `.eml` file per message, which any mail program opens, and logs one line: to whom, the
subject, and the file.
"""

import logging
from datetime import datetime
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend as FileBasedBackend

log = logging.getLogger("fablab_ops.mail")


class OneFilePerMessageBackend(FileBasedBackend):
    def send_messages(self, email_messages):
        if not email_messages:
            return 0
        sent = 0
        with self._lock:
            for message in email_messages:
                path = self._path_for(message)
                with open(path, "wb") as handle:
                    handle.write(message.message().as_bytes())
                sent += 1
                log.info("e-mail to %s: %s — %s", ", ".join(message.recipients()), " ".join(message.subject.split()),
                         path.resolve().as_uri())
        return sent

    def _path_for(self, message) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        return Path(self.file_path) / f"{stamp}-{abs(id(message)):x}.eml"
