"""A conventional digital baseline over the air: bytes through GNU Radio's own digital chain.

* ``ofdm``: ``DigitalLink`` (gr-fec convolutional code K = 7, rate 1/2, + gr-digital's OFDM transmitter
  and receiver chain, through the project's loopback ``mimo_channel`` in a SISO configuration); every
  packet counted (sent / detected / CRC-ok / lost).
* ``messages``: byte messages framed into packets and reassembled (a message is delivered only when all
  its packets are); the payloads of Fig. 6: the natural-language summary (UTF-8), the image's JPEG file.
* ``per``: the packet error rate vs SNR, measured once and cached (``per_table.csv``), from which an
  evaluation draws packet losses per question.
"""

from .messages import decode_jpeg, jpeg_bytes, reassemble, send_messages, summary_text, to_packets
from .ofdm import CHANNELS, DigitalConfig, DigitalLink, RunResult
from .per import PER_TABLE, PerTable

__all__ = [
    "CHANNELS", "PER_TABLE", "DigitalConfig", "DigitalLink", "PerTable", "RunResult", "decode_jpeg",
    "jpeg_bytes", "reassemble", "send_messages", "summary_text", "to_packets",
]
