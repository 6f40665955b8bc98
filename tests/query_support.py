"""Query counts of pages and lists: the same for one item as for many.

A page reads with one item, more are added, and it reads again: a query per row (an N+1) makes the second
count larger.
"""

from django.db import connection
from django.test.utils import CaptureQueriesContext

MANY = 12


def queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200, (url, response.status_code)
    return len(captured)


def same_cost(client, url, add, params=None):
    """The queries of `url` with what is there, then after `add()` made MANY more items."""
    one = queries(client, url, params)
    add()
    many = queries(client, url, params)
    assert many == one, f"{url}: {one} queries for one item, {many} for {MANY + 1}"
