"""Test doubles shared by the API unit tests."""

from __future__ import annotations


class FakeResolver:
    def __init__(self, answer: str | Exception) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def latest(self, current_image: str) -> str:
        self.asked.append(current_image)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def close(self) -> None:
        pass
