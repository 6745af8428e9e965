import { Effect, ParseResult } from "effect"
import * as Event from "../Event.js"
import { InvalidEvent } from "../PipelineError.js"

const formatPath = (path: ReadonlyArray<PropertyKey>): string => path.map(String).join(".")

/**
 * Validates every event of a batch against the envelope schema. The first malformed event fails
 * the whole batch with an error naming the event and the field, so nothing of it is written.
 */
export const validateBatch = (
  events: ReadonlyArray<unknown>
): Effect.Effect<ReadonlyArray<Event.Event>, InvalidEvent> =>
  // events built as `Event`s were validated when made: a batch of them needs no effect per event
  events.every((e) => e instanceof Event.Event)
    ? Effect.succeed(events as ReadonlyArray<Event.Event>)
    : validateEach(events)

const validateEach = (
  events: ReadonlyArray<unknown>
): Effect.Effect<ReadonlyArray<Event.Event>, InvalidEvent> =>
  Effect.forEach(events, (input, index) =>
    input instanceof Event.Event
      ? Effect.succeed(input)
      : Event.decode(input).pipe(
          Effect.mapError((error) => {
            const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
            const first = issues[0]
            const id =
              typeof input === "object" &&
              input !== null &&
              typeof (input as { id?: unknown }).id === "string"
                ? (input as { id: string }).id
                : undefined
            return new InvalidEvent({
              index,
              ...(id !== undefined ? { eventId: id } : {}),
              field: first ? formatPath(first.path) || "(event)" : "(event)",
              message: issues.map((i) => `${formatPath(i.path) || "(event)"}: ${i.message}`).join("; ")
            })
          })
        )
  )
