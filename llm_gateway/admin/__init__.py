"""The admin web page and the JSON endpoints it reads (``/admin``, ``/admin/api/...``)."""
