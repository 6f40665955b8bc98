import pytest
from django.core import mail

from fablab_ops.accounts.tasks import send_notification
from fablab_ops.notifications import notify


@pytest.fixture
def greeting_template(tmp_path, settings):
    folder = tmp_path / "notifications"
    folder.mkdir()
    (folder / "greeting.txt").write_text("{% load i18n %}{% translate 'Xin chào' %} {{ user.full_name }}\nNội dung\n")
    engine = {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    settings.TEMPLATES = [engine]


@pytest.mark.django_db(transaction=True)
def test_a_notification_is_mailed_after_commit_and_only_once(learner, greeting_template):
    from django.db import transaction

    with transaction.atomic():
        notification, created = notify(learner, "greeting", dedup_key="greeting-1")
        assert created
        assert mail.outbox == []  # nothing leaves before the transaction commits
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == f"Xin chào {learner.full_name}"
    assert notify(learner, "greeting", dedup_key="greeting-1") == (notification, False)
    assert send_notification(notification.pk) is False
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_notifies_nobody(learner, greeting_template):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        notify(learner, "greeting", dedup_key="greeting-2")
        raise RuntimeError("booking failed")
    assert mail.outbox == []
