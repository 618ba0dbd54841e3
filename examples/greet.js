// Strings, a curried function, a block body and a list of independent calls.
const greet = greeting => name => {
  const line = greeting + ", " + name;
  return line + "!";
};
const hello = greet("hello");
[hello("ambients"), hello("world"), greet("hi")("js")]
