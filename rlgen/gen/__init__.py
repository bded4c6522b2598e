"""Generative image models on the shared core: DCGAN, Improved GAN, InfoGAN, VAE with IAF, PixelCNN, PixelRNN."""
