import { Box, Text, useApp, useInput, useStdout } from 'ink';
import { memo, useEffect, useReducer } from 'react';
import type { Controller } from './controller.js';
import { keyNames } from './keymap.js';
import type { Line, Seg } from './lines.js';
import { renderFrame } from './render.js';

/** NO_COLOR (no-color.org): set and not empty. Bold, dim and inverse stay: they are not colours. */
export const noColor = (env: NodeJS.ProcessEnv = process.env): boolean => !!env.NO_COLOR;

/** ink <Text> props for a segment: without colour, only bold, dim and inverse remain. */
export function textProps(s: Seg, color: boolean): { color?: string; bold?: boolean; dimColor?: boolean; inverse?: boolean } {
  return { color: color ? s.color : undefined, bold: s.bold, dimColor: s.dim, inverse: s.inverse };
}

const LineView = memo(function LineView({ line, color }: { line: Line; color: boolean }) {
  if (!line.segs.some((s) => s.text.length)) return <Text> </Text>;
  return (
    <Text wrap="truncate-end">
      {line.segs.map((s, i) => (
        <Text key={i} {...textProps(s, color)}>
          {s.text}
        </Text>
      ))}
    </Text>
  );
});

/** Terminal size from the stream (ink-testing-library's has no rows). */
export function sizeOf(stdout: NodeJS.WriteStream | undefined, fallback = { cols: 100, rows: 30 }): { cols: number; rows: number } {
  return { cols: stdout?.columns || fallback.cols, rows: stdout?.rows || fallback.rows };
}

/**
 * The inspector: draws the controller's frame (only the rows on screen) and sends
 * keys to it. All behaviour lives in the controller and the command table.
 */
export function App({ controller, fixedSize, color = !noColor() }: { controller: Controller; fixedSize?: boolean; color?: boolean }) {
  const [, redraw] = useReducer((n: number) => n + 1, 0);
  const { exit } = useApp();
  const { stdout } = useStdout();

  useEffect(() => controller.subscribe(redraw), [controller]);

  useEffect(() => {
    if (fixedSize) return;
    const onResize = () => controller.resize(sizeOf(stdout, controller.state.size));
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [controller, stdout, fixedSize]);

  useInput((input, key) => {
    for (const k of keyNames(input, key)) controller.key(k);
  });

  const state = controller.state;
  useEffect(() => {
    if (state.quit) exit();
  }, [state.quit, exit]);

  const lines = renderFrame(state, controller.env);
  return (
    <Box flexDirection="column">
      {lines.map((l, i) => (
        <LineView key={i} line={l} color={color} />
      ))}
    </Box>
  );
}
