"""The class gallery: rooms that students join with a short code, their photos re-encoded and moderated, both
models' top-1 for each photo computed once and stored, and the grid's agreement figures. Storage in `store`,
rooms and join codes in `rooms`, photos and predictions in `photos`, rate limits in `limits`, the grid's facts
in `summary`, the join QR code in `qr`."""
